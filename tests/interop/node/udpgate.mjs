// A UDP gate on loopback for the cluster tests: node udpgate.mjs LISTEN_PORT TARGET_PORT OPEN_FILE
// forwards datagrams between its clients and 127.0.0.1:TARGET_PORT, but drops everything
// until OPEN_FILE exists. A relay advertising the gate's port as its own lets a test decide
// when other relays can open a direct link to it (QUIC retransmits the handshake meanwhile).
// Prints "listening" once bound; runs until killed.
import dgram from "node:dgram";
import { existsSync } from "node:fs";

const [listenPort, targetPort, openFile] = process.argv.slice(2);
const front = dgram.createSocket("udp4");
const backs = new Map(); // "address:port" of a client -> its socket toward the target
let open = false;
const isOpen = () => open || (open = existsSync(openFile));

front.on("message", (msg, from) => {
    if (!isOpen()) return;
    const key = `${from.address}:${from.port}`;
    let back = backs.get(key);
    if (!back) {
        back = dgram.createSocket("udp4");
        back.on("message", (reply) => front.send(reply, from.port, from.address));
        back.bind(0, "127.0.0.1");
        backs.set(key, back);
    }
    back.send(msg, Number(targetPort), "127.0.0.1");
});
front.bind(Number(listenPort), "127.0.0.1", () => console.log("listening"));
