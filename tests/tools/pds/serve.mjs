// A Bluesky PDS and a PLC directory on loopback for pressflow's delivery tests: offline, on
// SQLite in PDS_DATA_DIRECTORY (a temporary folder the test makes). Prints one line,
// `READY <pds port> <plc port>`, when both answer; stops on SIGTERM.
// Run with node22/'s Node: `node serve.mjs` (environment: PDS_DATA_DIRECTORY; optional PDS_PORT).
import { createRequire } from 'node:module'
import crypto from 'node:crypto'
import net from 'node:net'
import path from 'node:path'

// Loopback only: both servers call listen(port) with no host, which would bind every interface.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}

const require = createRequire(import.meta.url)
const plc = require('@did-plc/server')
const pds = await import('@atproto/pds')

const dataDir = process.env.PDS_DATA_DIRECTORY
if (!dataDir) throw new Error('PDS_DATA_DIRECTORY is required')

const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: 0 })
const plcHttp = await plcServer.start()
const plcPort = plcHttp.address().port

const port = Number(process.env.PDS_PORT || 0) || await freePort()
const env = {
  ...pds.readEnv(),
  port,
  hostname: 'localhost',
  devMode: true,
  dataDirectory: dataDir,
  blobstoreDiskLocation: path.join(dataDir, 'blobs'),
  didPlcUrl: `http://127.0.0.1:${plcPort}`,
  inviteRequired: false,
  jwtSecret: crypto.randomBytes(16).toString('hex'),
  adminPassword: 'admin-pass',
  plcRotationKeyK256PrivateKeyHex: crypto.randomBytes(32).toString('hex'),
  serviceHandleDomains: ['.test'],
  rateLimitsEnabled: process.env.PDS_RATE_LIMITS_ENABLED === 'true',
  bskyAppViewUrl: undefined,
  bskyAppViewDid: undefined,
  crawlers: [],
}
const server = await pds.PDS.create(pds.envToCfg(env), pds.envToSecrets(env))
await server.start()
process.stdout.write(`READY ${port} ${plcPort}\n`)

const stop = async () => {
  await server.destroy()
  await plcServer.destroy()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

async function freePort() {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
    s.on('error', reject)
  })
}
