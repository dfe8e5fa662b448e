// src/api/schema.d.ts is generated from the gateway's OpenAPI file; a changed file must not drift silently
// from the types the app compiles against.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const SPEC_FILE = path.join(ROOT, '..', 'gateway', 'src', 'gateway', 'openapi.json');
const SCHEMA_FILE = path.join(ROOT, 'src', 'api', 'schema.d.ts');
// The gateway's contract is part of the repository: a missing file is a failure, never a skipped suite.
if (!fs.existsSync(SPEC_FILE)) {
  throw new Error(`${SPEC_FILE} is missing: the app's API contract cannot be checked`);
}

/** What `npm run gen:api` would write, from `spec`. A child process: openapi-typescript is ES modules only. */
function generate(spec: string): string {
  return execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'gen-api.mjs'), '--print', '--spec', spec], {
    encoding: 'utf8',
  });
}


describe('the generated API types', () => {
  test('src/api/schema.d.ts matches the gateway OpenAPI file (if not: npm run gen:api)', () => {
    expect(fs.readFileSync(SCHEMA_FILE, 'utf8')).toBe(generate(SPEC_FILE));
  });

  test('a change to the OpenAPI file changes the generated types', () => {
    const spec = JSON.parse(fs.readFileSync(SPEC_FILE, 'utf8'));
    spec.components.schemas.Match.properties.last_seen_at = { type: 'number' };
    spec.components.schemas.Match.required.push('last_seen_at');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openapi-'));
    try {
      const changed = path.join(dir, 'openapi.json');
      fs.writeFileSync(changed, JSON.stringify(spec));
      const text = generate(changed);
      expect(text).not.toBe(fs.readFileSync(SCHEMA_FILE, 'utf8'));
      // the new required field lands in the Match type the app uses
      expect(text).toMatch(/\n {8}Match: \{[^}]*\n {12}last_seen_at: number;\n/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
