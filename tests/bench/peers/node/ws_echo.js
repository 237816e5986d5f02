// ws_echo.js - node "ws" echo server for make bench: every message comes back
// with its opcode.
//   node ws_echo.js PORT [HOST] [none|nocontext|context]
//                   [--tls-cert FILE --tls-key FILE]
// The third argument turns perMessageDeflate on, every message compressed
// (threshold 0), with no context kept on either side or with both kept.
// --tls-cert and --tls-key (PEM files, anywhere on the line) serve wss://
// from an https server (node's TLS) instead of ws://.
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

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
const mode = rest[2] || 'none';
const perMessageDeflate = mode === 'none' ? false : {
    threshold: 0,
    serverNoContextTakeover: mode === 'nocontext',
    clientNoContextTakeover: mode === 'nocontext',
};
if (!opts['tls-cert'] !== !opts['tls-key']) {
    console.error('ws_echo.js: --tls-cert and --tls-key go together');
    process.exit(2);
}

const common = {
    maxPayload: 64 * 1024 * 1024,
    perMessageDeflate,
    clientTracking: false,
};
let wss, listening;
if (opts['tls-cert']) {
    const server = https.createServer({
        cert: fs.readFileSync(opts['tls-cert']),
        key: fs.readFileSync(opts['tls-key']),
    });
    wss = new WebSocketServer({ server, ...common });
    listening = server;
    server.on('error', (err) => {
        console.error(`ws_echo.js: ${err.message}`);
        process.exit(1);
    });
    server.listen(port, host);
} else {
    wss = new WebSocketServer({ host, port, ...common });
    listening = wss;
}
wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
    });
    ws.on('error', () => {});
});
listening.on('listening', () => {
    console.log(`ws_echo.js listening on ${host} port ${port}` +
        (opts['tls-cert'] ? ' (TLS)' : ''));
});
wss.on('error', (err) => {
    console.error(`ws_echo.js: ${err.message}`);
    process.exit(1);
});
