// uws_echo.js - uWebSockets.js (prebuilt, npm @trufflesuite/uws-js-unofficial)
// echo server for make bench: every message comes back with its opcode.
//   node uws_echo.js PORT [HOST] [none|shared|dedicated]
//                    [--tls-cert FILE --tls-key FILE]
// The third argument turns permessage-deflate on: SHARED_COMPRESSOR (no
// server context; uWS then also shares the decompressor) or
// DEDICATED_COMPRESSOR with DEDICATED_DECOMPRESSOR (both keep context).
// --tls-cert and --tls-key (PEM files, anywhere on the line) serve wss://
// with uWS.SSLApp instead of ws://.
'use strict';
const uWS = require('@trufflesuite/uws-js-unofficial');

// Take --name FILE pairs out of the line; the rest is positional.
function options(argv) {
    const opts = {}, rest = [];
    for (let i = 0; i < argv.length; i++) {
        if (argv[i].startsWith('--') && i + 1 < argv.length) opts[argv[i].slice(2)] = argv[++i];
        else rest.push(argv[i]);
    }
    return { opts, rest };
}

const { opts, rest } = options(process.argv.slice(2));
const port = Number(rest[0] || 9001);
const host = rest[1] || '127.0.0.1';
const MAX = 64 * 1024 * 1024;
const mode = rest[2] || 'none';
const compression = mode === 'shared' ? uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR
    : mode === 'dedicated' ? uWS.DEDICATED_COMPRESSOR | uWS.DEDICATED_DECOMPRESSOR
    : uWS.DISABLED;
if (!opts['tls-cert'] !== !opts['tls-key']) {
    console.error('uws_echo: --tls-cert and --tls-key go together');
    process.exit(2);
}
const app = opts['tls-cert']
    ? uWS.SSLApp({ cert_file_name: opts['tls-cert'], key_file_name: opts['tls-key'] })
    : uWS.App();

app.ws('/*', {
    compression,
    maxPayloadLength: MAX,
    // Never drop an echo: uWS drops sends past maxBackpressure.
    maxBackpressure: 4 * MAX,
    idleTimeout: 0,
    message: (ws, message, isBinary) => {
        ws.send(message, isBinary, compression !== uWS.DISABLED);
    },
})
    .listen(host, port, (token) => {
        if (!token) {
            console.error(`uws_echo: cannot listen on ${host}:${port}`);
            process.exit(1);
        }
        console.log(`uws_echo listening on ${host} port ${port}` +
            (opts['tls-cert'] ? ' (TLS)' : ''));
    });
