// Integration tests need the real components: make sure they are installed and running (fast when warm).
// The second engines (a TLS dockerd, Podman, sshd) are started by the test files that use them; whichever of them was
// not running before this run is stopped after it, so that a test run leaves no daemon of its own behind.
import { execFileSync, spawnSync } from 'node:child_process';

const SECOND_ENGINES = ['tls-dockerd', 'podman', 'sshd'] as const;

function running(engine: string): boolean {
  return spawnSync('bash', [`scripts/engines/${engine}.sh`, 'status'], { stdio: 'ignore' }).status === 0;
}

export default function setup(): () => void {
  execFileSync('bash', ['scripts/provision.sh'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const before = new Set(SECOND_ENGINES.filter(running));
  return () => {
    for (const engine of SECOND_ENGINES) {
      if (before.has(engine) || !running(engine)) continue;
      spawnSync('bash', [`scripts/engines/${engine}.sh`, 'stop'], { stdio: ['ignore', 'ignore', 'inherit'] });
    }
  };
}
