import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

export interface RegistryArgs {
  prefix: string;
}

/** Lifecycle rules: untagged layers go after a week; the newest 100 tagged images stay (rollback room). */
export const lifecycleRules = [
  {
    rulePriority: 1,
    description: 'Expire untagged images after 7 days',
    selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 },
    action: { type: 'expire' },
  },
  {
    rulePriority: 2,
    description: 'Keep the newest 100 images',
    selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 100 },
    action: { type: 'expire' },
  },
];

/**
 * The image repository: tags are immutable (a tag names one digest forever, as the deploy relies
 * on), every push is scanned, layers are encrypted with KMS.
 */
export class Registry extends pulumi.ComponentResource {
  readonly repositoryUrl: pulumi.Output<string>;
  readonly repositoryArn: pulumi.Output<string>;

  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:registry:Registry', name, {}, opts);
    const repository = new aws.ecr.Repository(
      name,
      {
        name: args.prefix,
        imageTagMutability: 'IMMUTABLE',
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: 'KMS' }],
        forceDelete: false,
      },
      { parent: this },
    );
    new aws.ecr.LifecyclePolicy(
      name,
      { repository: repository.name, policy: JSON.stringify({ rules: lifecycleRules }) },
      { parent: this },
    );
    this.repositoryUrl = repository.repositoryUrl;
    this.repositoryArn = repository.arn;
    this.registerOutputs({ repositoryUrl: this.repositoryUrl });
  }
}
