"""The install screen: "GPU drivers / PCI passthrough" (urwid).

A face over the layers below, holding no decision: every change builds a `Choices`
and asks the planner, and what the screen shows comes from the `Plan` it returns.

- `session`: the screen's state without urwid (facts, choices, plans, edits);
- `words`: host state and device states in plain words (pure text);
- `reader`: reading the host in a thread (no urwid); `logbuffer`: logs held while
  the screen is up;
- `rows`, `devicelist`, `form`, `preview`, `loading`, `palette`: the widgets;
- `app`: the main loop and the flow between screens;
- `command`: `installer-ext tui` (arguments, config, output, exit codes).
"""
