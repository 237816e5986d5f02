// ws_echo.js - node "ws" echo server for make bench: every message comes back
// with its opcode.
//   node ws_echo.js PORT [HOST] [none|nocontext|context]
// The third argument turns perMessageDeflate on, every message compressed
// (threshold 0), with no context kept on either side or with both kept.
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 9001);
const host = process.argv[3] || '127.0.0.1';
const mode = process.argv[4] || 'none';
const perMessageDeflate = mode === 'none' ? false : {
    threshold: 0,
    serverNoContextTakeover: mode === 'nocontext',
    clientNoContextTakeover: mode === 'nocontext',
};

const wss = new WebSocketServer({
    host,
    port,
    maxPayload: 64 * 1024 * 1024,
    perMessageDeflate,
    clientTracking: false,
});
wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
    });
    ws.on('error', () => {});
});
wss.on('listening', () => {
    console.log(`ws_echo.js listening on ${host} port ${port}`);
});
wss.on('error', (err) => {
    console.error(`ws_echo.js: ${err.message}`);
    process.exit(1);
});
