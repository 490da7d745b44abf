import path from "node:path";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  plugins: [react()],
  resolve: { alias: { "@": path.resolve(here, "src") } },
  // `npm start` writes VITE_* (and server secrets) to the repo's .local/.env. Vite only ever
  // exposes variables with the VITE_ prefix to the bundle, and a test greps dist/ to prove it.
  envDir: path.resolve(here, "../.local"),
  server: {
    port: Number(process.env.WEB_PORT ?? 5173),
    strictPort: true,
    // The dev server serves files outside web/ only from node_modules (the Vite client and
    // the dependencies it pre-bundles). Left to itself Vite allows the whole workspace, the
    // repository root, and /@fs/ would read .local/ (the Postgres data, refresh tokens
    // included) and every .env. Vite's defaults stay denied, plus key files and .local/.
    fs: {
      strict: true,
      allow: [here, path.resolve(here, "../node_modules")],
      deny: [".env", ".env.*", "*.{crt,pem,key,p12,pfx}", "**/.git/**", "**/.local/**"],
    },
  },
  preview: { port: Number(process.env.WEB_PORT ?? 5173), strictPort: true },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // Libraries in a chunk of their own: it changes less often than our code, so browsers
    // keep it cached across deploys, and the size report names it plainly. Only those the
    // first screen imports ($initial): a library only a lazy chunk uses (the operator
    // console's charts and CSV) stays in that chunk, or every member would download it.
    rolldownOptions: {
      output: { codeSplitting: { groups: [{ name: "vendor", test: /node_modules/, tags: ["$initial"] }] } },
    },
  },
});
