// typescript-eslint, strict and type-checked (`npm run lint`). Where a rule is relaxed, the
// line says why; tests get a few more relaxations for assertions on parsed JSON.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/go/**', 'bench/results/**', 'test/fixtures/**', 'test/harness/**/*.go'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test()/describe() return promises the runner awaits itself.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      // Numbers and booleans read fine in messages; objects and undefined do not.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // `() => void x()` arrows are the codebase's idiom for callbacks.
      '@typescript-eslint/no-confusing-void-expression': [
        'error',
        { ignoreArrowShorthand: true, ignoreVoidOperator: true, ignoreVoidReturningFunctions: true },
      ],
      // `x!` after a check the compiler cannot follow (Map.get after has, a regex group):
      // the code states the invariant at the use; noUncheckedIndexedAccess stays on.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `void x.getter` forces a lazy decode (pki), `void _dropped` marks a destructured leftover.
      '@typescript-eslint/no-meaningless-void-operator': 'off',
      // Its "always falsy" findings here are state flags set across an await (the compiler
      // narrows them as constants) and checks on decoded input the types already promise:
      // the checks stay, the rule goes.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // A `let` read by a closure before its one assignment (a callback wired before the part exists).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `_` names a value kept unused on purpose, as tsconfig's noUnusedLocals allows.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // An async method without await keeps its interface's Promise signature (authenticate, start).
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Tests read JSON answers (status pages, logs, metrics) and assert on them.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      // @kubernetes/client-node's model classes are built from object literals in fixtures.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/no-dynamic-delete': 'off',
      // Error callbacks name the error they expect (grpc.ServiceError); `out += chunk` on Buffers.
      '@typescript-eslint/use-unknown-in-catch-callback-variable': 'off',
      '@typescript-eslint/restrict-plus-operands': 'off',
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      // Tests pass an AbortSignal's reason through as it came.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
    },
  },
  { files: ['**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
  { files: ['**/*.mjs', '**/*.js'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
);
