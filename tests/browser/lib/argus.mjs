// The real `argus up --demo` for browser tests: a fresh data directory, ephemeral ports, and the issuer reached as
// http://localhost:PORT — WebAuthn needs a domain name for its relying party, never an IP address, and Chromium
// treats http://localhost as a secure context.
//
// The process handling (banner parsing, stop) is tests/interop/lib/argus.mjs's; only the configuration differs.

import { createServer } from 'node:net';

import { Argus } from '../../interop/lib/argus.mjs';

export { ARGUS_BIN } from '../../interop/lib/argus.mjs';

/** A port free on 127.0.0.1 right now (the issuer binds it next; the window for a clash is tiny). */
async function freePort() {
  const server = createServer();
  await new Promise((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/**
 * Start `argus up --demo` with the issuer at http://localhost:PORT. Returns the running Argus (see
 * tests/interop/lib/argus.mjs) with `issuerUrl` set to that URL.
 *
 * `demoPort` fixes the demo API's port (else ephemeral), for a `config` whose own `[[gate.routes]]` lead there;
 * `config` is TOML appended to the base (tables the base does not have, or arrays of tables such as gate.routes).
 */
export async function startArgus({ demoPort = 0, config = '' } = {}) {
  const port = await freePort();
  const issuerUrl = `http://localhost:${port}`;
  // The base configuration's [issuer] table cannot be repeated, so it is given in full here.
  const argus = await Argus.start({ config, baseConfig: issuerConfig(port, issuerUrl, demoPort) });
  argus.issuerUrl = issuerUrl;
  return argus;
}

export { freePort };

function issuerConfig(port, issuerUrl, demoPort) {
  return `[issuer]
listen = "127.0.0.1:${port}"
public_url = "${issuerUrl}"
[gate]
listen = "127.0.0.1:0"
[watch]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:${demoPort}"
[metrics]
listen = "127.0.0.1:0"
`;
}
