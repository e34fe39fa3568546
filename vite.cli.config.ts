import { defineConfig } from 'vite';

// The command line as plain JavaScript for Node (`npm run build`): dist-cli/tunelab.mjs and the trial worker
// thread's entry beside it (spawn-node.ts finds it next to the bundle). Shaders come in as text (`?raw`),
// every dependency is bundled except Dawn (npm `webgpu`, a native module), the package's one dependency.
export default defineConfig({
  publicDir: false,
  build: {
    ssr: true,
    outDir: 'dist-cli',
    emptyOutDir: true,
    target: 'node20',
    sourcemap: false,
    rollupOptions: {
      input: { tunelab: 'src/cli/run.ts', 'trial.worker.node': 'src/workers/trial.worker.node.ts' },
      output: { format: 'es', entryFileNames: '[name].mjs', chunkFileNames: 'chunks/[name]-[hash].mjs' },
    },
  },
  ssr: { target: 'node', noExternal: true, external: ['webgpu'] },
});
