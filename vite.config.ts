import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Shaders are imported as raw text (`?raw`), so the same WGSL files serve the page, workers and Node.
export default defineConfig({
  plugins: [svelte()],
  base: './',
  worker: { format: 'es' },
  // The one chunk over Vite's 500 kB default is ECharts (~580 kB, only the modules the charts use), loaded
  // on first use by Chart.svelte; the page itself is ~410 kB.
  build: { target: 'es2022', sourcemap: true, chunkSizeWarningLimit: 600 },
  server: { port: 5173, strictPort: false },
});
