import * as pulumi from '@pulumi/pulumi';

/** One IAM policy statement; resources and principals stay Pulumi inputs until serialized. */
export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: pulumi.Input<string> | pulumi.Input<string>[];
  Principal?: Record<string, pulumi.Input<string> | pulumi.Input<string>[]> | '*';
  Condition?: Record<string, Record<string, pulumi.Input<string> | pulumi.Input<string>[]>>;
}

/**
 * Serializes a policy document. Documents are plain JSON built here (not the getPolicyDocument
 * invoke) so that the resources' inputs show exactly what AWS receives and tests can read them.
 */
export function policyDocument(statements: PolicyStatement[]): pulumi.Output<string> {
  return pulumi.jsonStringify({ Version: '2012-10-17', Statement: statements });
}

/**
 * Trust policy of an IRSA role: only the given Kubernetes service account of the cluster's OIDC
 * issuer may assume it, and only with the STS audience.
 */
export function irsaTrustPolicy(args: {
  oidcProviderArn: pulumi.Input<string>;
  /** Issuer host and path, without https:// (as the OIDC provider's condition keys name it). */
  oidcIssuer: pulumi.Input<string>;
  namespace: string;
  serviceAccount: string;
}): pulumi.Output<string> {
  return pulumi.output(args.oidcIssuer).apply((issuer) =>
    policyDocument([
      {
        Effect: 'Allow',
        Action: 'sts:AssumeRoleWithWebIdentity',
        Principal: { Federated: args.oidcProviderArn },
        Condition: {
          StringEquals: {
            [`${issuer}:sub`]: `system:serviceaccount:${args.namespace}:${args.serviceAccount}`,
            [`${issuer}:aud`]: 'sts.amazonaws.com',
          },
        },
      },
    ]),
  );
}
