"""EC2 compute for jobs: staging to S3, job-scoped credentials in SSM, the instance pool, the VM agent.

The lab side (`jobs.targets.ec2.EC2Target`) and the VM side (`agent`) share only S3 and SSM; see
`layout` for the keys each writes and reads.
"""
