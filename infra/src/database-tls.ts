// Where the image keeps Amazon RDS's CA bundle (the Dockerfile fetches it at build time, pinned by
// checksum). Plain data, no Pulumi imports, so the Dockerfile test reads the same path.

/** Path of the RDS global CA bundle inside the ingesta image. */
export const rdsCaBundlePath = '/app/certs/rds-global-bundle.pem';

/** sslmode values that check the server certificate, and so need sslrootcert. */
export const verifyingSslModes = ['verify-ca', 'verify-full'];
