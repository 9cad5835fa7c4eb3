// Integration tests need the real components: make sure they are installed and running (fast when warm).
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('bash', ['scripts/provision.sh'], { stdio: ['ignore', 'inherit', 'inherit'] });
}
