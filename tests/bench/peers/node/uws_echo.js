// uws_echo.js - uWebSockets.js (prebuilt, npm @trufflesuite/uws-js-unofficial)
// echo server for make bench: every message comes back with its opcode.
//   node uws_echo.js PORT [HOST] [none|shared|dedicated]
// The third argument turns permessage-deflate on: SHARED_COMPRESSOR (no
// server context; uWS then also shares the decompressor) or
// DEDICATED_COMPRESSOR with DEDICATED_DECOMPRESSOR (both keep context).
'use strict';
const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2] || 9001);
const host = process.argv[3] || '127.0.0.1';
const MAX = 64 * 1024 * 1024;
const mode = process.argv[4] || 'none';
const compression = mode === 'shared' ? uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR
    : mode === 'dedicated' ? uWS.DEDICATED_COMPRESSOR | uWS.DEDICATED_DECOMPRESSOR
    : uWS.DISABLED;

uWS.App()
    .ws('/*', {
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
        console.log(`uws_echo listening on ${host} port ${port}`);
    });
