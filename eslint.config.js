// Lint: typed rules that catch the mistakes that hurt services (floating promises, misused promises).
import tseslint from 'typescript-eslint';

// Node 20's key generation can hang the process when a generated key is exported later (see generateKeyPair in
// services/core/identity/keys.ts): keys are made there, never with node:crypto's generators.
const KEYGEN_MESSAGE = "make keys with generateKeyPair from services/core/identity/keys.ts (node:crypto's can deadlock on Node 20)";
const KEYGEN_PATHS = ['node:crypto', 'crypto'].map((name) => ({
  name,
  importNames: ['generateKeyPair', 'generateKeyPairSync'],
  message: KEYGEN_MESSAGE,
}));

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
      'no-restricted-imports': ['error', { paths: KEYGEN_PATHS }],
    },
  },
  {
    // Shared code stays shared: services/core never reaches into a role's folder.
    files: ['services/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: KEYGEN_PATHS,
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
