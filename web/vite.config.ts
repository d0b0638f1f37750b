// Builds the dashboard (web/) into web/dist, then prints the gzipped size of its JavaScript and fails
// the build when it is over budget (the target: <= 150 KB of gzipped JS).
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";

const JS_BUDGET_BYTES = 150 * 1024;

function bundleBudget(): Plugin {
  return {
    name: "bundle-budget",
    apply: "build",
    generateBundle(_options, bundle) {
      let raw = 0, gz = 0;
      const lines: string[] = [];
      for (const file of Object.values(bundle)) {
        if (file.type !== "chunk") continue;
        const bytes = Buffer.from(file.code);
        const g = gzipSync(bytes, { level: 9 }).length;
        raw += bytes.length;
        gz += g;
        lines.push(`  ${file.fileName}: ${(bytes.length / 1024).toFixed(1)} KB, ${(g / 1024).toFixed(1)} KB gzipped`);
      }
      const summary = `web bundle: JavaScript ${(raw / 1024).toFixed(1)} KB, ${
        (gz / 1024).toFixed(1)
      } KB gzipped (budget ${JS_BUDGET_BYTES / 1024} KB gzipped)`;
      console.log(`\n${lines.join("\n")}\n${summary}`);
      if (gz > JS_BUDGET_BYTES) this.error(`${summary}: over budget, make the bundle smaller`);
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  base: "./", // works from any path on a static host
  publicDir: false,
  logLevel: "warn",
  plugins: [bundleBudget()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
  },
});
