// ws_fanout.js - node "ws" fan-out server for make bench, the library's
// documented broadcast: every message goes to each open client in
// wss.clients (the sender included), one send() each.
//   node ws_fanout.js PORT [HOST]
'use strict';
const { WebSocket, WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 9006);
const host = process.argv[3] || '127.0.0.1';
const wss = new WebSocketServer({
    host,
    port,
    maxPayload: 16 * 1024 * 1024,
    perMessageDeflate: false,
    clientTracking: true,
});

wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
        for (const client of wss.clients) {
            if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
        }
    });
    ws.on('error', () => {});
});
wss.on('listening', () => {
    console.log(`ws_fanout.js listening on ${host} port ${port}`);
});
wss.on('error', (err) => {
    console.error(`ws_fanout.js: ${err.message}`);
    process.exit(1);
});
