#!/usr/bin/env node
import { main } from '../dist/strata.mjs';

process.exitCode = await main(process.argv.slice(2));
