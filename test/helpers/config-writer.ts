// Child process for the concurrent-writers test: adds N contexts named <prefix>N.example.com.
import { AstroConfig } from '../../src/config/store.js';

const [file, prefix, count] = process.argv.slice(2) as [string, string, string];
const cfg = await AstroConfig.load({ globalFile: file });
for (let i = 0; i < Number(count); i++) {
  await cfg.saveContext(`${prefix}${i}.example.com`, { token: `Bearer t-${prefix}-${i}` });
}
