// Lint: typed rules that catch the mistakes that hurt services (floating promises, misused promises).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['services/generated/**', 'dist/**', 'node_modules/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Shared code stays shared: services/core never reaches into a role's folder.
    files: ['services/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/node-manager/**', '**/management-authority/**', '**/slice-authority/**', '**/service-provider/**', '**/cli/**'],
              message: 'services/core must not import a role folder or the CLI',
            },
          ],
        },
      ],
    },
  },
);
