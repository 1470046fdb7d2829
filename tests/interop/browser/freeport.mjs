// Print a port number free for both TCP and UDP on [::] (dual stack), as the relay's QUIC
// and HTTP listeners share one port number the way `make run` uses 4443.
import dgram from "node:dgram";
import net from "node:net";

function tcpPort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.once("error", reject);
		srv.listen(0, "::", () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

function udpFree(port) {
	return new Promise((resolve) => {
		const sock = dgram.createSocket({ type: "udp6", ipv6Only: false });
		sock.once("error", () => resolve(false));
		sock.bind(port, "::", () => sock.close(() => resolve(true)));
	});
}

for (let i = 0; i < 50; i++) {
	const port = await tcpPort();
	if (await udpFree(port)) {
		console.log(port);
		process.exit(0);
	}
}
console.error("no port free for both TCP and UDP");
process.exit(1);
