/**
 * Test TLS material made with openssl: a CA, a server certificate for 127.0.0.1 and localhost and a
 * client certificate (both signed by the CA), and a second CA that signed nothing.
 */

/** Paths of the files {@link makeCertificates} writes. */
export interface TestCertificates {
  ca: string;
  otherCa: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

async function openssl(dir: string, args: string): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args: args.split(" "),
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!out.success) throw new Error(`openssl ${args} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** Writes the certificates into `dir`. */
export async function makeCertificates(dir: string): Promise<TestCertificates> {
  const key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  await openssl(dir, `req -x509 ${key} -keyout ca.key -out ca.pem -days 1 -subj /CN=Shoal-Test-CA`);
  await Deno.writeTextFile(`${dir}/server.ext`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await Deno.writeTextFile(`${dir}/client.ext`, "extendedKeyUsage=clientAuth\n");
  for (const name of ["server", "client"]) {
    await openssl(dir, `req ${key} -keyout ${name}.key -out ${name}.csr -subj /CN=shoal-${name}`);
    await openssl(
      dir,
      `x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out ${name}.pem -days 1 -extfile ${name}.ext`,
    );
  }
  await openssl(dir, `req -x509 ${key} -keyout other.key -out other.pem -days 1 -subj /CN=Other-CA`);
  return {
    ca: `${dir}/ca.pem`,
    otherCa: `${dir}/other.pem`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server.key`,
    clientCert: `${dir}/client.pem`,
    clientKey: `${dir}/client.key`,
  };
}
