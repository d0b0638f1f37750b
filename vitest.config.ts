import { defineConfig } from "vitest/config";

// Integration tests share one local stack (started by scripts/test.sh), so files run one at a time.
export default defineConfig({
  test: {
    include: ["supabase/tests/integration/**/*.test.ts", "web/tests/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
