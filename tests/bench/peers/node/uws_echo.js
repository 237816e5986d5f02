// uws_echo.js - uWebSockets.js (prebuilt, npm @trufflesuite/uws-js-unofficial)
// echo server for make bench: every message comes back with its opcode.
//   node uws_echo.js PORT [HOST]
'use strict';
const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2] || 9001);
const host = process.argv[3] || '127.0.0.1';
const MAX = 64 * 1024 * 1024;

uWS.App()
    .ws('/*', {
        compression: uWS.DISABLED,
        maxPayloadLength: MAX,
        // Never drop an echo: uWS drops sends past maxBackpressure.
        maxBackpressure: 4 * MAX,
        idleTimeout: 0,
        message: (ws, message, isBinary) => {
            ws.send(message, isBinary);
        },
    })
    .listen(host, port, (token) => {
        if (!token) {
            console.error(`uws_echo: cannot listen on ${host}:${port}`);
            process.exit(1);
        }
        console.log(`uws_echo listening on ${host} port ${port}`);
    });
