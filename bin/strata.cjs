#!/usr/bin/env node
'use strict';
require('./bundle-loader.cjs')
  .loadCli()
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
