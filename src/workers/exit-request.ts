// What the host sends on a Node trial worker's control port (spawn-node.ts) to end it: free the device, let
// Dawn settle, exit. A module of its own: the worker entry must not import spawn-node.ts, whose worker URL
// is relative to its own file (the CLI bundle would move it into a shared chunk).
export const EXIT_REQUEST = 'exit';
