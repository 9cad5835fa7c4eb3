// ESLint (flat config): typescript-eslint's recommended rules, no import cycles, and the walls between layers.
//
//   cli/ → deploy/ → platform/ auth/ image/ bundle/ parse/ → config/ ui/ errors env util/
//
// Nothing imports cli/; the Astro and Software wings of the deploy never import each other; platform/ talks to no
// other middle layer; environment variables are read in src/env.ts only.
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import tseslint from 'typescript-eslint';

const LOWEST = ['config', 'ui', 'util'];

/** Import patterns a folder of src/ may not use, as no-restricted-imports patterns relative to any depth. */
function forbid(...folders) {
  return {
    'no-restricted-imports': [
      'error',
      {
        patterns: folders.map((folder) => ({
          regex: `^(\\.\\./)+${folder}(/|\\.js$)`,
          message: `this layer may not import ${folder}/ (see the layer map in eslint.config.js)`,
        })),
      },
    ],
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.state/**', 'coverage/**', 'fixtures/**', 'python/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })] },
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setImmediate: 'readonly',
        AbortController: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'read environment variables in src/env.ts only' },
        // `import { z }` is zod's namespace object, which keeps all of zod and its locales in the bundle (755 KB to
        // compile on every start); `import * as z` lets esbuild keep what is used (199 KB).
        { selector: "ImportDeclaration[source.value='zod'] > ImportSpecifier", message: "import zod as a namespace: import * as z from 'zod'" },
      ],
    },
  },
  { files: ['src/env.ts'], rules: { 'no-restricted-syntax': 'off' } },
  // Matching control characters is the escape function's whole job.
  { files: ['src/ui/escape.ts'], rules: { 'no-control-regex': 'off' } },
  // The layers, from the top: nothing imports cli/.
  {
    files: [
      'src/deploy/**/*.ts',
      'src/platform/**/*.ts',
      'src/auth/**/*.ts',
      'src/image/**/*.ts',
      'src/bundle/**/*.ts',
      'src/parse/**/*.ts',
      ...LOWEST.map((d) => `src/${d}/**/*.ts`),
      'src/*.ts',
    ],
    rules: forbid('cli'),
  },
  { files: ['src/deploy/astro/**/*.ts'], rules: forbid('cli', 'software') },
  { files: ['src/deploy/software/**/*.ts'], rules: forbid('cli', 'astro') },
  { files: ['src/deploy/kernel/**/*.ts'], rules: forbid('cli', 'astro', 'software') },
  { files: ['src/auth/**/*.ts', 'src/image/**/*.ts', 'src/bundle/**/*.ts', 'src/parse/**/*.ts'], rules: forbid('cli', 'deploy') },
  { files: ['src/platform/**/*.ts'], rules: forbid('cli', 'deploy', 'auth', 'image', 'bundle', 'parse') },
  { files: LOWEST.map((d) => `src/${d}/**/*.ts`), rules: forbid('cli', 'deploy', 'platform', 'auth', 'image', 'bundle', 'parse') },
  // Tests match control characters on purpose and wrap fixture errors freely.
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.mjs', 'bench/**/*.mjs', 'bench/**/*.cjs', 'bin/**/*.js', '*.js', '*.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off', 'no-control-regex': 'off', 'preserve-caught-error': 'off' },
  },
  // bin/ is CommonJS (bin/package.json): a CommonJS entry point starts faster than an ES module.
  { files: ['bin/**/*.js', 'bench/**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', __dirname: 'readonly' } } },
);
