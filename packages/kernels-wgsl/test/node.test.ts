import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { requestNodeAdapter, vulkanDriverManifests } from '../src/node.js';

const root = mkdtempSync(join(tmpdir(), 'rnagrad-icd-'));
function manifest(folder: string, name: string): string {
  mkdirSync(join(root, folder), { recursive: true });
  const path = join(root, folder, name);
  writeFileSync(path, '{"file_format_version": "1.0.0"}');
  return path;
}

test('the driver probe finds manifests where the Vulkan loader looks, and nothing else', () => {
  const data = manifest('data/vulkan/icd.d', 'gpu_icd.json');
  manifest('data/vulkan/icd.d', 'notes.txt');
  const config = manifest('config/vulkan/icd.d', 'other_icd.json');
  const env = { HOME: join(root, 'home'), XDG_DATA_DIRS: join(root, 'data'), XDG_CONFIG_DIRS: join(root, 'config') };
  const found = vulkanDriverManifests(env);
  assert.ok(found.includes(data) && found.includes(config), found.join());
  assert.not.ok(found.some((p) => p.endsWith('.txt')));
});

test('VK_ICD_FILENAMES / VK_DRIVER_FILES replace the search; files that do not exist do not count', () => {
  const listed = manifest('listed', 'only_icd.json');
  assert.equal(vulkanDriverManifests({ VK_ICD_FILENAMES: `${listed}:${join(root, 'absent.json')}` }), [listed]);
  assert.equal(
    vulkanDriverManifests({ VK_DRIVER_FILES: join(root, 'absent.json'), XDG_DATA_DIRS: join(root, 'data') }),
    [],
  );
});

test('VK_ADD_DRIVER_FILES adds to the search', () => {
  const extra = manifest('extra', 'extra_icd.json');
  assert.ok(vulkanDriverManifests({ VK_ADD_DRIVER_FILES: extra, HOME: join(root, 'home') }).includes(extra));
});

test('an unknown adapter mode is refused by name', async () => {
  const saved = process.env.RNAGRAD_ADAPTER;
  process.env.RNAGRAD_ADAPTER = 'gpu';
  try {
    await requestNodeAdapter().then(
      () => assert.unreachable('RNAGRAD_ADAPTER=gpu was accepted'),
      (err: Error) => assert.match(err.message, 'RNAGRAD_ADAPTER must be one of auto, software, hardware, got "gpu"'),
    );
  } finally {
    if (saved === undefined) delete process.env.RNAGRAD_ADAPTER;
    else process.env.RNAGRAD_ADAPTER = saved;
  }
});

// Machines without a Vulkan driver skip the hardware try, so Dawn has nothing to complain about.
test('starting an adapter prints no Vulkan driver-search warnings', () => {
  const script = join(root, 'start.mts');
  writeFileSync(
    script,
    `import { requestNodeAdapter } from ${JSON.stringify(new URL('../src/node.ts', import.meta.url).href)};\n` +
      'const { adapter, softwareIcd } = await requestNodeAdapter();\n' +
      'console.log(adapter.info.description, softwareIcd);\n',
  );
  const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 60_000 });
  assert.is(run.status, 0, run.stderr);
  assert.not.match(run.stderr, /vkCreateInstance|Found no drivers|VK_ERROR_INCOMPATIBLE_DRIVER/);
  if (vulkanDriverManifests().length === 0) assert.match(run.stderr, 'using SwiftShader');
});

test.run();
