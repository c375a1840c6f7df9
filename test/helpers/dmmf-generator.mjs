// A Prisma generator that only writes the DMMF (Prisma's parsed view of schema.prisma) to the
// file named by its `out` option. Generators speak JSON-RPC: requests on stdin, answers on stderr.
import { writeFileSync } from 'node:fs';
import readline from 'node:readline';

const reply = (message) => process.stderr.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const request = JSON.parse(line);
  if (request.method === 'getManifest') {
    reply({ id: request.id, result: { manifest: { prettyName: 'DMMF for tests', defaultOutput: '.' } } });
  } else if (request.method === 'generate') {
    try {
      writeFileSync(request.params.generator.config.out, JSON.stringify(request.params.dmmf));
      reply({ id: request.id, result: null });
    } catch (error) {
      reply({ id: request.id, error: { code: -32000, message: String(error), data: {} } });
    }
  }
});
