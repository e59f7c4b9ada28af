/** Loaded by mocha before any test (see .mocharc.json): quiet logs unless asked for. */
process.env.INTRACOM_LOG_LEVEL ??= 'silent';
