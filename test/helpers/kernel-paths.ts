/**
 * The engine's kernel paths under test. The BLAS path needs Debian's libopenblas0-pthread,
 * which a machine with nothing but Node lacks, so `npm test` runs the engine tests on the
 * portable path only, and `npm run test:blas` (which .ci/run runs after installing OpenBLAS)
 * runs them on both paths — failing, not skipping, if OpenBLAS cannot be loaded.
 */
export const withBlas = process.env.ET_TEST_BLAS === '1'

export const kernelKinds: Array<'ts' | 'blas'> = withBlas ? ['ts', 'blas'] : ['ts']
