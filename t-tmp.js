const f = () => {};
function run(n, unref) { const t0 = performance.now(); for (let i = 0; i < n; i++) { const t = setTimeout(f, 10000); if (unref) t.unref(); clearTimeout(t); } return (performance.now() - t0) * 1000 / n; }
for (let r = 0; r < 3; r++) console.log('set+clear µs', run(200000, false).toFixed(3), 'with unref', run(200000, true).toFixed(3));
