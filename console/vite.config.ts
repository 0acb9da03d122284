// The console's build: `npm run build` (root) runs `vite build console`; the node serves dist/console at /console.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/console/',
  // Preact's automatic JSX runtime, without a plugin.
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../dist/console',
    emptyOutDir: true,
    // Everything as files: the Content-Security-Policy allows no inline script, and data: only for images.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
  },
});
