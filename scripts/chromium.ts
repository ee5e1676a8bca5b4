/**
 * Headless Chromium with WebGPU for the test scripts: Debian's /usr/bin/chromium (or CHROMIUM_PATH)
 * driven by playwright-core, on SwiftShader unless RNAGRAD_BROWSER_HARDWARE is set.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why Chromium cannot start here, or null when it can. */
export function chromiumMissing(): string | null {
  return existsSync(chromiumPath)
    ? null
    : `Chromium not found at ${chromiumPath} (install Debian's chromium package or set CHROMIUM_PATH)`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      '--enable-features=Vulkan',
      ...(process.env.RNAGRAD_BROWSER_HARDWARE ? [] : ['--use-webgpu-adapter=swiftshader']),
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}
