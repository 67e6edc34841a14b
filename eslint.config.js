// ESLint flat config. The one rule that shapes the architecture: only
// src/authz/oidc-provider-internals.ts may reach into oidc-provider's internals
// (STYLE.md, "Only one file deep-imports a library's internals").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const internals = {
  group: ['oidc-provider/*'],
  message: 'oidc-provider internals are reached only through src/authz/oidc-provider-internals.ts',
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      'no-restricted-imports': ['error', { patterns: [internals] }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/authz/oidc-provider-internals.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['src/cli/**', 'bin/**', 'bench/**', 'test/**', 'src/**/*.test.ts'],
    rules: { 'no-console': 'off' },
  },
);
