import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "native/", "bench/work/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // The service's web page runs in a browser, as a plain ES module.
    files: ["web/**/*.js"],
    languageOptions: {
      sourceType: "module",
      globals: Object.fromEntries(
        [
          "AbortController",
          "crypto",
          "CSS",
          "document",
          "fetch",
          "FormData",
          "sessionStorage",
          "setTimeout",
          "TextDecoderStream",
          "window",
        ].map((name) => [name, "readonly"]),
      ),
    },
  },
);
