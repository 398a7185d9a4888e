"""First boot on the installed node: the cluster side of the plan, on every node.

A joined node has only its kubelet's credentials, which let it read and patch its own
Node: so every node writes its request on its own Node, and a server node (RKE2's admin
kubeconfig) carries it out. docs/firstboot.md has the design and its upstream facts;
docs/design.md places it in the node's boot.

Its command-line face is installer_ext/commands/firstboot.py (`installer-ext firstboot`,
and `--reconcile` for the server's timer); `options` holds the options, importing nothing
heavy.

On a node, `runner` orders the steps and records each in the state dir (`state`):
`api` waits for the API with the credentials `credentials` picks (`apiwait`); `gpu`
decides which device plugins this host can run, or that its NVIDIA GPUs are left to the
NVIDIA GPU Operator (`gpu`); `request` publishes the node's request and labels on its
own Node (`request` is the request and answer format, `publish` the node side); `cluster` carries it out at
once on a server or waits for a server's answer; `handover` records what now belongs to
the pcidevices controller (installer_ext/boot/handover.py, which the binder reads);
`allocatable` waits for the GPUs in the node's allocatable (`node`). `inputs` reads the
plan, the node name and the devices the binder bound.

The cluster side, with admin credentials: `reconcile` (one node's request) with
`settings`, `addons`, `claims`, `sriovnet`, `plugins` and `manifests`; `cluster` (one
pass over every pending node); `objects` (the resources, labels and annotations, and
how they are named).
"""
