import './test/bench/peers/rpc-responder';
setTimeout(() => process.exit(0), 11000);
