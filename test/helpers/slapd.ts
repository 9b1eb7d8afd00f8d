/**
 * A real OpenLDAP server (Debian's slapd) for the LDAP sign-in tests: its own temp directory
 * (a generated slapd.conf, an mdb database loaded with slapadd before it starts, a test CA
 * and a server certificate made with openssl), listening on 127.0.0.1 only — plain LDAP
 * (StartTLS offered) on one free port and LDAPS on another. `stop()` kills it and removes
 * the directory.
 *
 * The directory is dc=example,dc=org: people under ou=people (uid, cn, userPassword in
 * clear text, which slapd compares as is), groupOfNames under ou=groups, a read-only
 * service account cn=reader,dc=example,dc=org.
 */
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './server.js';

export const BASE_DN = 'dc=example,dc=org';
export const READER_DN = `cn=reader,${BASE_DN}`;
export const READER_PASSWORD = 'reader-secret';

export interface LdapPerson {
  /** the RDN value of uid=…,ou=people (may hold `,`, `=`, `+`…: escaped here) */
  uid: string;
  password: string;
}

export interface LdapGroup {
  cn: string;
  /** uids of members */
  members: string[];
}

export interface TestSlapd {
  /** ldap://127.0.0.1:port */
  url: string;
  /** ldaps://127.0.0.1:port */
  ldapsUrl: string;
  /** PEM file of the CA that signed the server's certificate */
  caFile: string;
  /** Kills slapd and removes its directory. */
  stop(): Promise<void>;
}

/** An unused TCP port on 127.0.0.1 (nothing listens on it once this returns). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** RFC 4514 escaping for the test's own DNs (independent of the code under test). */
const rdnValue = (v: string) => v.replace(/[,=+<>#;\\"]/g, (c) => `\\${c}`).replace(/^ | $/g, (c) => `\\${c}`);
export const personDn = (uid: string) => `uid=${rdnValue(uid)},ou=people,${BASE_DN}`;

function ldif(people: LdapPerson[], groups: LdapGroup[]): string {
  const entries = [
    `dn: ${BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example`,
    `dn: ou=people,${BASE_DN}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=groups,${BASE_DN}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: ${READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: ${READER_PASSWORD}`,
    ...people.map(
      (p) =>
        `dn: ${personDn(p.uid)}\nobjectClass: inetOrgPerson\nuid: ${p.uid}\ncn: ${p.uid}\nsn: ${p.uid}\nuserPassword: ${p.password}`,
    ),
    ...groups.map(
      (g) =>
        `dn: cn=${g.cn},ou=groups,${BASE_DN}\nobjectClass: groupOfNames\ncn: ${g.cn}\n` +
        g.members.map((m) => `member: ${personDn(m)}`).join('\n'),
    ),
  ];
  return `${entries.join('\n\n')}\n`;
}

function slapdConf(dir: string): string {
  return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile ${dir}/slapd.pid
TLSCACertificateFile ${dir}/ca.crt
TLSCertificateFile ${dir}/server.crt
TLSCertificateKeyFile ${dir}/server.key
database mdb
suffix "${BASE_DN}"
rootdn "cn=admin,${BASE_DN}"
rootpw admin-secret
directory ${dir}/db
maxsize 10485760
access to attrs=userPassword by anonymous auth by self read by * none
access to * by * read
`;
}

/** A CA and a certificate for 127.0.0.1 signed by it. */
function makeCertificates(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=corral test LDAP CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  execFileSync('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1\\n" > san.ext'], { cwd: dir });
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.crt');
}

async function waitForPort(port: number, exited: () => string | undefined): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const why = exited();
    if (why) throw new Error(`slapd exited: ${why}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`slapd did not listen on ${port}`);
}

export async function startSlapd(people: LdapPerson[], groups: LdapGroup[] = []): Promise<TestSlapd> {
  const dir = await tempDir('corral-slapd-');
  await mkdir(path.join(dir, 'db'));
  makeCertificates(dir);
  await writeFile(path.join(dir, 'slapd.conf'), slapdConf(dir));
  await writeFile(path.join(dir, 'data.ldif'), ldif(people, groups));
  execFileSync('slapadd', ['-f', 'slapd.conf', '-l', 'data.ldif'], { cwd: dir, stdio: 'pipe' });
  const [port, ldapsPort] = [await freePort(), await freePort()];
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${ldapsPort}`;
  // -d keeps it in the foreground (a child we can kill); 0 logs nothing.
  const child = spawn('slapd', ['-f', path.join(dir, 'slapd.conf'), '-h', `${url}/ ${ldapsUrl}/`, '-d', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let exitedWith: string | undefined;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.once('exit', (code, signal) => (exitedWith = `${code ?? signal} ${stderr.slice(-2000)}`));
  try {
    await waitForPort(port, () => exitedWith);
    await waitForPort(ldapsPort, () => exitedWith);
  } catch (e) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url,
    ldapsUrl,
    caFile: path.join(dir, 'ca.crt'),
    async stop() {
      if (exitedWith === undefined) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
