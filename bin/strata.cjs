#!/usr/bin/env node
'use strict';
const argv = process.argv.slice(2);
require('./bundle-loader.cjs')
  .loadCli(argv)
  .main(argv)
  .then((code) => {
    process.exitCode = code;
  });
