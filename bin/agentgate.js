#!/usr/bin/env node
// Launcher for the `agentgate` command. In a source checkout it runs the TypeScript sources
// directly (Node >= 22.18 strips types); an installed package runs the compiled dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/main.ts', import.meta.url);
const entry = existsSync(source) ? source : new URL('../dist/main.js', import.meta.url);
const { main } = await import(entry.href);
await main();
