/*
 * Writes docs/examples/quadrants/: a tiny labelled image dataset (12×12 grey PNGs, four classes:
 * which quadrant is bright), a solver, a train/test net and a deploy net for it, and two images
 * to classify. Small enough to train in seconds on any machine, so the README's walkthrough runs
 * offline. Deterministic: running it again writes the same bytes.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEPLOY_NET, IMAGE_DATA_NET, quadrantArchive, quadrantPng } from '../test/jobs/runners/runner-fixtures.js'

const out = fileURLToPath(new URL('../docs/examples/quadrants/', import.meta.url))
mkdirSync(out, { recursive: true })
writeFileSync(join(out, 'quadrants.tar.gz'), quadrantArchive(40, 1))
writeFileSync(join(out, 'solver.prototxt'), `# The quadrants example: SGD with momentum, a test pass and a snapshot every 100 iterations.
net: "train_test.prototxt"
base_lr: 0.05
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
display: 20
max_iter: 300
test_iter: 4
test_interval: 100
snapshot: 100
snapshot_prefix: "quadrants"
random_seed: 7
solver_mode: CPU
`)
writeFileSync(join(out, 'train_test.prototxt'), IMAGE_DATA_NET)
writeFileSync(join(out, 'deploy.prototxt'), DEPLOY_NET)
writeFileSync(join(out, 'ne.png'), quadrantPng('ne', 424242))
writeFileSync(join(out, 'sw.png'), quadrantPng('sw', 434343))
process.stdout.write(`wrote ${out}\n`)
