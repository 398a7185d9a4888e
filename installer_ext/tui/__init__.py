"""The install screen: "GPU drivers / PCI passthrough" (urwid).

A face over the layers below, holding no decision: every change builds a `Choices`
and asks the planner, and what the screen shows comes from the `Plan` it returns.

- `session`: the screen's state without urwid (facts, choices, plans, edits);
- `words`: host state and device states in plain words; `hints`: what the details
  and the key line say about the focus (pure text);
- `reader`: reading the host in a thread (no urwid); `logbuffer`: logs held while
  the screen is up;
- `chrome` (title, footer), `switches`, `rows`, `devicelist`, `form`, `preview`,
  `loading`, `palette`: the widgets;
- `terminal`: the terminal it draws on (/dev/tty when standard output is a file);
- `app`: the main loop and the flow between screens;
- `command`: `installer-ext tui` (arguments, config, output, exit codes).

docs/screen.md describes the screen and the command as a person meets them.
"""
