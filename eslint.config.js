// ESLint for the browser code (src/handoff/web/static) and its unit tests (tests/js).
// `make lint` runs it; the versions are pinned in package.json / package-lock.json.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["src/handoff/web/static/vendor/**", "node_modules/**", ".venv/**", "build/**"] },
  js.configs.recommended,
  {
    // The staff pages and their modules.
    files: ["src/handoff/web/static/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.browser },
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
  {
    // One self-contained classic script each, for foreign pages (the widget) and /docs.
    files: ["src/handoff/web/static/widget.js", "src/handoff/web/static/docs.js"],
    languageOptions: { sourceType: "script" },
  },
  {
    // /docs loads Swagger UI's bundle before docs.js.
    files: ["src/handoff/web/static/docs.js"],
    languageOptions: { globals: { SwaggerUIBundle: "readonly" } },
  },
  {
    files: ["tests/js/**/*.js", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.node },
  },
];
