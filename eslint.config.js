// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bin/*.js', 'scripts/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test's describe/it return promises the runner tracks itself.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      '@typescript-eslint/require-await': 'off',
      'no-console': 'off',
    },
  },
  {
    files: ['src/authenticate/**', 'src/authorize/**', 'src/audit/**', 'src/revocation/**'],
    rules: {
      // DESIGN.md: these parts meet through interfaces; only app.ts/main.ts wire them.
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/authenticate/*', '**/authorize/*', '**/gateway/*', '**/audit/*', '**/revocation/*', '!./*'], message: 'service parts must not import each other; wire them in app.ts' },
      ] }],
    },
  },
  {
    // The pipeline's stages hold request logic against contracts only; the two listener
    // configurations (service.ts, human.ts, paths.ts) are wiring and may name concrete parts.
    files: ['src/gateway/**'],
    ignores: ['src/gateway/service.ts', 'src/gateway/human.ts', 'src/gateway/paths.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/authenticate/*', '**/authorize/*', '**/audit/*', '**/revocation/*', '**/admin/*', '**/store/*', '**/bus/*', '**/config/*'], message: 'pipeline stages meet parts through src/contracts/ and the options they are given' },
      ] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
