// uws_fanout.js - uWebSockets.js fan-out server for make bench: every
// connection subscribes to topic "room" when it opens, and every message
// is published to "room" with app.publish(), which uWS frames once and
// sends to every subscriber, the sender included.
//   node uws_fanout.js PORT [HOST]
'use strict';
const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2] || 9005);
const host = process.argv[3] || '127.0.0.1';
const MAX = 16 * 1024 * 1024;
const app = uWS.App();

app.ws('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: MAX,
    // Never drop a delivery: uWS skips subscribers past maxBackpressure.
    maxBackpressure: 4 * MAX,
    idleTimeout: 0,
    open: (ws) => {
        ws.subscribe('room');
    },
    message: (ws, message, isBinary) => {
        app.publish('room', message, isBinary);
    },
})
    .listen(host, port, (token) => {
        if (!token) {
            console.error(`uws_fanout: cannot listen on ${host}:${port}`);
            process.exit(1);
        }
        console.log(`uws_fanout listening on ${host} port ${port}`);
    });
