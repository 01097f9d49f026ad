import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { CLOUDWATCH_NAMESPACE, QUEUE_DEPTH_METRIC } from '../../src/metrics/cloudwatch-publisher.js'
import { repoRoot } from '../helpers/processes.js'
import { loadTemplate, isRecord } from './cloudformation-template.js'
import type { Template } from './cloudformation-template.js'
import { configError, dockerfileEnv, envFile, hereDocuments, logicalLines, shellWords } from './deploy-commands.js'
import type { Role } from './deploy-commands.js'
import { ingressProblems, ingressRules, referenceProblems, scalingProblems, userDataScripts } from './template-checks.js'
import type { IngressPolicy } from './template-checks.js'

const TEMPLATE = `${repoRoot}cloudformation/elastic-thought.yaml`
const template = loadTemplate(TEMPLATE)
const copy = (): Template => structuredClone(template)

// The only ports a CIDR may reach: SSH from AllowedSshCidr on both groups, the API port from
// ApiAllowedCidr, and the optional load balancer's 443/80 from ApiAllowedCidr.
const policy: IngressPolicy = {
  public: [
    { port: 22, cidrParameter: 'AllowedSshCidr' },
    { port: { Ref: 'ApiPort' }, cidrParameter: 'ApiAllowedCidr', group: { Ref: 'ApiSecurityGroup' } },
    { port: 443, cidrParameter: 'ApiAllowedCidr', group: { Ref: 'LoadBalancerSecurityGroup' } },
    { port: 80, cidrParameter: 'ApiAllowedCidr', group: { Ref: 'LoadBalancerSecurityGroup' } }
  ],
  internalPorts: [5984, 4150, 4151, 4160, 4161, 4369, 9100]
}

describe('cloudformation/elastic-thought.yaml', () => {
  it('parses with the CloudFormation short tags into the long forms', () => {
    expect(template.AWSTemplateFormatVersion).toBe('2010-09-09')
    const api = template.Resources.ApiInstance
    expect(api?.Type).toBe('AWS::EC2::Instance')
    expect(api?.Properties?.SubnetId).toEqual({ Ref: 'SubnetA' })
    expect(template.Resources.DataVolume?.Properties?.AvailabilityZone).toEqual({ 'Fn::GetAtt': ['SubnetA', 'AvailabilityZone'] })
    expect(template.Outputs?.ApiUrl?.Value).toMatchObject({ 'Fn::If': ['HasCertificate', { 'Fn::Sub': expect.any(String) }, { 'Fn::Sub': expect.any(String) }] })
  })

  it('resolves every Ref, Fn::GetAtt and Fn::Sub variable, and uses conditional resources only under their condition', () => {
    expect(referenceProblems(template)).toEqual([])
  })

  it('the reference check catches a dangling Ref, a bad attribute, a Fn::Sub typo and an unguarded conditional resource', () => {
    const t = copy()
    const props = t.Resources.ApiInstance?.Properties ?? {}
    props.SubnetId = { Ref: 'SubnetC' }
    props.SecurityGroupIds = [{ 'Fn::GetAtt': ['ApiSecurityGroup', 'Nope'] }]
    // eslint-disable-next-line no-template-curly-in-string -- Fn::Sub syntax, not JavaScript
    t.Outputs = { ...t.Outputs, Broken: { Value: { 'Fn::Sub': 'http://${ApiAdress}:${ApiPort} ${!Literal}' } }, Lb: { Value: { 'Fn::GetAtt': ['LoadBalancer', 'DNSName'] } } }
    const problems = referenceProblems(t)
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringContaining("'SubnetC' is neither"),
      expect.stringContaining('has no attribute Nope'),
      expect.stringContaining("'ApiAdress' is neither"),
      expect.stringContaining('LoadBalancer exists only under condition HasCertificate')
    ]))
    expect(problems).toHaveLength(4)
  })

  it('opens only the API port and SSH (from its parameter) to CIDRs; CouchDB and NSQ admit the workers\' group only', () => {
    expect(ingressProblems(template, policy)).toEqual([])
    const rules = ingressRules(template)
    for (const port of [5984, 4150, 4161]) {
      const forPort = rules.filter((r) => r.from === port)
      expect(forPort, `rules for port ${port}`).toHaveLength(1)
      expect(forPort[0]).toMatchObject({ to: port, group: { Ref: 'ApiSecurityGroup' }, sourceGroup: { Ref: 'WorkerSecurityGroup' }, cidr: undefined })
    }
    // nsqd's HTTP port and nsqlookupd's TCP port are used on the API node itself only.
    expect(rules.filter((r) => r.from === 4151 || r.from === 4160)).toEqual([])
    // SSH comes from a parameter the operator must give: no default, so never 0.0.0.0/0 by accident.
    expect(template.Parameters.AllowedSshCidr?.Default).toBeUndefined()
    expect(rules.filter((r) => r.from === 22).map((r) => r.cidr)).toEqual([{ Ref: 'AllowedSshCidr' }, { Ref: 'AllowedSshCidr' }])
  })

  it('the ingress check catches CouchDB open to the world, an IPv6 ::/0 rule and an all-protocol rule', () => {
    const t = copy()
    const group = t.Resources.ApiSecurityGroup?.Properties ?? {}
    group.SecurityGroupIngress = [
      ...(Array.isArray(group.SecurityGroupIngress) ? group.SecurityGroupIngress : []),
      { IpProtocol: 'tcp', FromPort: 5984, ToPort: 5984, CidrIp: '0.0.0.0/0' },
      { IpProtocol: 'tcp', FromPort: 4161, ToPort: 4161, CidrIpv6: '::/0' },
      { IpProtocol: '-1', CidrIp: { Ref: 'ApiAllowedCidr' } }
    ]
    const problems = ingressProblems(t, policy)
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringContaining('port 5984-5984 open to 0.0.0.0/0'),
      expect.stringContaining('internal port 5984 admits a CIDR'),
      expect.stringContaining('port 4161-4161 open to ::/0'),
      expect.stringContaining('all protocols open')
    ]))
  })

  it(`alarms watch ${CLOUDWATCH_NAMESPACE}/${QUEUE_DEPTH_METRIC} by Cluster (the publisher's names) and drive one scale-out and one scale-in policy of the GPU group`, () => {
    const { problems, summary } = scalingProblems(template, CLOUDWATCH_NAMESPACE, QUEUE_DEPTH_METRIC)
    expect(problems).toEqual([])
    expect(summary.map((s) => [s.direction, s.group]).sort()).toEqual([['in', 'GpuWorkerGroup'], ['out', 'GpuWorkerGroup']])
    expect(template.Description).toContain('namespace ElasticThought, metric QueueDepth')
    expect(template.Description).toContain('dimension Cluster')
    // The scale-out alarm compares the depth with the workers already wanted, not the raw depth.
    const backlog = template.Resources.QueueBacklogAlarm?.Properties?.Metrics
    expect(Array.isArray(backlog) && backlog.some((q) => isRecord(q) && q.ReturnData === true && q.Expression === 'depth - FILL(wanted, 0)')).toBe(true)
  })

  it('the alarm check catches a renamed metric and an alarm that acts on nothing it knows', () => {
    const t = copy()
    const empty = t.Resources.QueueEmptyAlarm?.Properties ?? {}
    empty.MetricName = 'NumJobsReadyOrBeingProcessed'
    empty.AlarmActions = [{ Ref: 'GpuLaunchTemplate' }]
    const { problems } = scalingProblems(t, CLOUDWATCH_NAMESPACE, QUEUE_DEPTH_METRIC)
    expect(problems).toEqual([
      expect.stringContaining('QueueEmptyAlarm: does not watch ElasticThought/QueueDepth'),
      expect.stringContaining('is not a scaling policy')
    ])
  })

  it('the GPU group can shrink to zero and is bounded by MaxWorkers', () => {
    const group = template.Resources.GpuWorkerGroup?.Properties ?? {}
    expect(group.MinSize).toBe('0')
    expect(group.MaxSize).toEqual({ Ref: 'MaxWorkers' })
    expect(group.DesiredCapacity).toBeUndefined()
    expect(group.LaunchTemplate).toEqual({ LaunchTemplateId: { Ref: 'GpuLaunchTemplate' }, Version: { 'Fn::GetAtt': ['GpuLaunchTemplate', 'LatestVersionNumber'] } })
  })

  it('takes secrets from SSM by name: no password parameter with a value or default, none in user data', () => {
    for (const [name, param] of Object.entries(template.Parameters)) {
      if (/password|secret|token/i.test(name)) {
        expect(name, 'secret parameters hold the name of an SSM parameter').toMatch(/Parameter$/)
        expect(String(param.Default ?? '')).toMatch(/^(\/[\w./-]+)?$/)
      }
    }
    for (const { raw } of userDataScripts(template)) {
      expect(raw).toMatch(/aws ssm get-parameter --region "\$REGION" --with-decryption --name/)
      expect(raw).not.toMatch(/PASSWORD=[^$\n]/)
    }
  })

  it('keeps the blob bucket private and encrypted, and grants the roles nothing wider than the stack needs', () => {
    const bucket = template.Resources.BlobBucket?.Properties ?? {}
    expect(bucket.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true })
    expect(JSON.stringify(bucket.BucketEncryption)).toContain('SSEAlgorithm')
    for (const roleName of ['ApiRole', 'WorkerRole']) {
      const statements = JSON.parse(JSON.stringify(template.Resources[roleName]?.Properties?.Policies)) as Array<{ PolicyDocument: { Statement: Array<{ Sid: string, Action: string | string[], Resource: unknown, Condition?: unknown }> } }>
      for (const s of statements.flatMap((p) => p.PolicyDocument.Statement)) {
        const actions = ([] as string[]).concat(s.Action)
        expect(actions.some((a) => a === '*' || a.endsWith(':*')), `${roleName}.${s.Sid}: wildcard action`).toBe(false)
        // Resource "*" only where the service has no resource-level permissions.
        if (s.Resource === '*') expect(actions, `${roleName}.${s.Sid}`).toEqual(expect.arrayContaining([expect.stringMatching(/^(ecr:GetAuthorizationToken|cloudwatch:PutMetricData)$/)]))
        if (actions.includes('cloudwatch:PutMetricData')) expect(s.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': CLOUDWATCH_NAMESPACE } })
        if (actions.some((a) => a.startsWith('s3:'))) expect(JSON.stringify(s.Resource)).toContain('BlobBucket')
      }
    }
  })

  it('user data scripts are valid bash', () => {
    const scripts = userDataScripts(template)
    expect(scripts.map((s) => s.resource).sort()).toEqual(['ApiInstance', 'GpuLaunchTemplate'])
    for (const { resource, script } of scripts) {
      const result = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' })
      expect(result.stderr, resource).toBe('')
      expect(result.status, resource).toBe(0)
    }
  })

  // Placeholder values for the ${…} of the user data and the shell variables it fills in at boot.
  const values: Record<string, string> = {
    'AWS::Region': 'eu-west-1',
    'AWS::StackName': 'et-prod',
    BlobBucket: 'et-prod-blobbucket-1a2b3c',
    ApiPort: '8080',
    CouchDbAdminUser: 'admin',
    'ApiInstance.PrivateIp': '10.42.0.10',
    WorkerIdleSeconds: '600',
    Registration: 'closed',
    AdminUser: 'admin',
    PublicUrl: 'https://et.example.com',
    'Vpc.CidrBlock': '10.42.0.0/16',
    COUCH_PW: 'couch-password-0123',
    ADMIN_PW: 'admin-password-0123',
    PRIVATE_IP: '10.42.0.10'
  }
  const fill = (text: string): string => text
    .replace(/\$\{([^}!]+)\}/g, (m, name: string) => values[name] ?? m)
    .replace(/\$([A-Z_]+)/g, (m, name: string) => values[name] ?? m)

  /** The role word and its arguments of every `<image> server|worker|publish-metrics …` command. */
  const commands = (raw: string): Array<{ role: Role, args: string[] }> => logicalLines(fill(raw)).flatMap((line) => {
    if (line.trim().startsWith('#')) return []
    const words = shellWords(line.replace(/\s&\s*$/, ''))
    const i = words.findIndex((w, k) => k > 0 && /(ServerImage|GpuWorkerImage)\}$|^\$IMAGE$/.test(words[k - 1] ?? '') && ['server', 'worker', 'publish-metrics', 'status'].includes(w))
    return i < 0 ? [] : [{ role: words[i] as Role, args: words.slice(i + 1) }]
  })

  it('starts the server, the metrics publisher and the GPU worker with flags and variables their parsers accept', () => {
    const scripts = Object.fromEntries(userDataScripts(template).map((s) => [s.resource, s.raw]))
    const api = scripts.ApiInstance ?? ''
    const gpu = scripts.GpuLaunchTemplate ?? ''
    const apiDocs = hereDocuments(fill(api))
    const gpuDocs = hereDocuments(fill(gpu))
    const cpuImageEnv = dockerfileEnv(`${repoRoot}docker/Dockerfile`)
    const gpuImageEnv = dockerfileEnv(`${repoRoot}docker/gpu-worker.Dockerfile`)
    const envOf = (docs: Map<string, string>, path: string): Record<string, string> => envFile(docs.get(path) ?? '')

    const apiCommands = commands(api)
    expect(apiCommands.map((c) => c.role)).toEqual(['server', 'publish-metrics'])
    const [server, publisher] = apiCommands
    const serverEnv = { ...cpuImageEnv, ...envOf(apiDocs, '/etc/elastic-thought/server.env') }
    expect(serverEnv.ET_COUCH_URL).toBe('http://admin:couch-password-0123@127.0.0.1:5984/elastic-thought')
    expect(serverEnv.ET_PUBLIC_URL).toBe('https://et.example.com')
    // The load balancer's nodes live in the stack's VPC: their X-Forwarded-For names the client.
    expect(serverEnv.ET_TRUST_PROXY).toBe('10.42.0.0/16')
    expect(configError('server', [], { ...serverEnv, ET_PUBLIC_URL: '' })).toBeNull()
    expect(configError('server', server?.args ?? [], serverEnv)).toBeNull()
    expect(server?.args.join(' ')).toBe('--scheduler nsq --nsqd 127.0.0.1:4150 --blob-store-url s3://et-prod-blobbucket-1a2b3c/blobs?region=eu-west-1 --registration closed --admin-user admin')
    expect(configError('publish-metrics', publisher?.args ?? [], envOf(apiDocs, '/etc/elastic-thought/metrics.env'))).toBeNull()
    expect(publisher?.args).toEqual(['--cluster', 'et-prod', '--region', 'eu-west-1'])

    const [worker, ...others] = commands(gpu)
    expect(others).toEqual([])
    expect(worker?.role).toBe('worker')
    const workerEnv = { ...gpuImageEnv, ...envOf(gpuDocs, '/etc/elastic-thought/worker.env') }
    expect(configError('worker', worker?.args ?? [], workerEnv)).toBeNull()
    expect(worker?.args).toEqual(['--caffe-bin', 'caffe', '--gpu', '0', '--nsqlookupd', '10.42.0.10:4161', '--exit-when-idle', '600'])
    expect(workerEnv.ET_COUCH_URL).toBe('http://admin:couch-password-0123@10.42.0.10:5984/elastic-thought')

    // The same parsers reject what a drifted deployment file would pass.
    expect(configError('worker', ['--exit-when-idel', '600'], workerEnv)).toMatch(/exit-when-idel/)
    expect(configError('server', ['--scheduler', 'nsq'], serverEnv)).toMatch(/--nsqd/)
  })
})
