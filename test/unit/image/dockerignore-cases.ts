/**
 * `.dockerignore` cases shared by the unit test (what our build context sends) and the integration test that
 * compares our context with what the Docker CLI sends, image contents against image contents.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export interface DockerignoreCase {
  name: string;
  /** Files of the project (a Dockerfile is added unless one is listed or `dockerfile` names another). */
  files: string[];
  dockerignore?: string;
  excludeDags?: boolean;
  /** Dockerfile path relative to the project, default `Dockerfile`. */
  dockerfile?: string;
  /** Files (not directories) our context must send, `Dockerfile` and `.dockerignore` included when present. */
  expected: string[];
  /** False for cases Docker's CLI cannot express (DAG exclusion is ours): not compared with `docker build`. */
  comparable?: boolean;
}

const project = ['requirements.txt', 'packages.txt', 'dags/a.py', 'dags/sub/b.py', 'include/data.csv', 'plugins/p.py', 'tests/test_dag.py'];

export const dockerignoreCases: DockerignoreCase[] = [
  {
    name: 'no .dockerignore sends everything',
    files: project,
    expected: ['Dockerfile', ...project],
  },
  {
    name: 'a bare pattern matches at the root only',
    files: ['a.pyc', 'dags/b.pyc', 'dags/c.py'],
    dockerignore: '*.pyc\n',
    expected: ['.dockerignore', 'Dockerfile', 'dags/b.pyc', 'dags/c.py'],
  },
  {
    name: '** matches at any depth',
    files: ['a.pyc', 'dags/b.pyc', 'dags/deep/er/c.pyc', 'dags/c.py'],
    dockerignore: '**/*.pyc\n',
    expected: ['.dockerignore', 'Dockerfile', 'dags/c.py'],
  },
  {
    name: 'a directory pattern drops everything below it',
    files: project,
    dockerignore: 'dags\n',
    expected: ['.dockerignore', 'Dockerfile', 'include/data.csv', 'packages.txt', 'plugins/p.py', 'requirements.txt', 'tests/test_dag.py'],
  },
  {
    name: 'an exception re-includes one file of an excluded directory',
    files: ['tests/keep.py', 'tests/drop.py', 'tests/sub/drop.py', 'main.py'],
    dockerignore: 'tests\n!tests/keep.py\n',
    expected: ['.dockerignore', 'Dockerfile', 'main.py', 'tests/keep.py'],
  },
  {
    name: '* with an exception keeps the exception and the build files',
    files: ['requirements.txt', 'packages.txt', 'dags/a.py', 'README.md'],
    dockerignore: '*\n!requirements.txt\n',
    expected: ['.dockerignore', 'Dockerfile', 'requirements.txt'],
  },
  {
    name: 'an exception for a directory re-includes its whole subtree',
    files: ['include/a.txt', 'include/keep/x.txt', 'include/keep/deeper/y.txt'],
    dockerignore: 'include/*\n!include/keep\n',
    expected: ['.dockerignore', 'Dockerfile', 'include/keep/deeper/y.txt', 'include/keep/x.txt'],
  },
  {
    name: 'an excluded directory is not walked for wildcard exceptions that do not name it',
    files: ['foo/keep', 'foo/other', 'bar/keep'],
    dockerignore: 'foo\n!*/keep\n',
    expected: ['.dockerignore', 'Dockerfile', 'bar/keep'],
  },
  {
    name: 'the Dockerfile and .dockerignore are sent even when listed',
    files: ['app.py', 'notes.md'],
    dockerignore: 'Dockerfile\n.dockerignore\n*.md\n',
    expected: ['.dockerignore', 'Dockerfile', 'app.py'],
  },
  {
    name: 'comments, blank lines, surrounding spaces and a leading slash',
    files: ['secrets.txt', 'keep.txt', '#notacomment'],
    dockerignore: '# a comment\n\n   /secrets.txt   \n \n',
    expected: ['#notacomment', '.dockerignore', 'Dockerfile', 'keep.txt'],
  },
  {
    name: 'the last matching line wins',
    files: ['a.txt', 'b.txt', 'c.md'],
    dockerignore: '!a.txt\n*.txt\n',
    expected: ['.dockerignore', 'Dockerfile', 'c.md'],
  },
  {
    name: 'later exception after a wildcard',
    files: ['a.txt', 'b.txt', 'c.md'],
    dockerignore: '*.txt\n!a.txt\n',
    expected: ['.dockerignore', 'Dockerfile', 'a.txt', 'c.md'],
  },
  {
    name: 'a trailing slash and nested __pycache__ directories',
    files: ['logs/scheduler/1.log', 'dags/__pycache__/a.cpython-311.pyc', 'dags/a.py', '__pycache__/x.pyc'],
    dockerignore: 'logs/\n**/__pycache__\n',
    expected: ['.dockerignore', 'Dockerfile', 'dags/a.py'],
  },
  {
    name: 'the .dockerignore an Astro project starts with',
    files: ['astro/x', '.git/HEAD', '.env', 'airflow_settings.yaml', 'logs/a.log', '.venv/bin/python', 'dags/a.py', 'requirements.txt'],
    dockerignore: 'astro\n.git\n.env\nairflow_settings.yaml\nlogs/\n.venv\n',
    expected: ['.dockerignore', 'Dockerfile', 'dags/a.py', 'requirements.txt'],
  },
  {
    name: '? matches exactly one character, [] a class',
    files: ['file1.txt', 'file22.txt', 'data-a.csv', 'data-b.csv', 'data-c.csv'],
    dockerignore: 'file?.txt\ndata-[ab].csv\n',
    expected: ['.dockerignore', 'Dockerfile', 'data-c.csv', 'file22.txt'],
  },
  {
    name: 'matching is case-sensitive',
    files: ['README.md', 'readme.md'],
    dockerignore: 'README.md\n',
    expected: ['.dockerignore', 'Dockerfile', 'readme.md'],
  },
  {
    name: 'a Dockerfile elsewhere is sent even inside an excluded directory',
    files: ['docker/Dockerfile.prod', 'docker/other.txt', 'app.py'],
    dockerfile: 'docker/Dockerfile.prod',
    dockerignore: 'docker\n',
    expected: ['.dockerignore', 'app.py', 'docker/Dockerfile.prod'],
  },
  {
    name: 'DAG-only deploys leave dags/ out',
    files: project,
    excludeDags: true,
    expected: ['Dockerfile', 'include/data.csv', 'packages.txt', 'plugins/p.py', 'requirements.txt', 'tests/test_dag.py'],
    comparable: false,
  },
  {
    name: 'DAG-only deploys leave dags/ out even when .dockerignore re-includes files in it',
    files: ['dags/a.py', 'dags/keep.py', 'requirements.txt'],
    dockerignore: '*.pyc\n!dags/keep.py\n',
    excludeDags: true,
    expected: ['.dockerignore', 'Dockerfile', 'requirements.txt'],
    comparable: false,
  },
  {
    name: 'DAG-only deploys leave only the top-level dags/ out',
    files: ['dags/a.py', 'plugins/dags/x.py', 'dagsfile.txt', 'include/dags'],
    excludeDags: true,
    expected: ['Dockerfile', 'dagsfile.txt', 'include/dags', 'plugins/dags/x.py'],
    comparable: false,
  },
];

/** The Dockerfile used for every case: copies the whole context so the image shows what was sent. */
export const COPY_ALL_DOCKERFILE = 'FROM scratch\nCOPY . /ctx/\n';

/** Writes a case's project into `dir`. */
export async function writeCaseProject(dir: string, testCase: DockerignoreCase): Promise<void> {
  const dockerfile = testCase.dockerfile ?? 'Dockerfile';
  for (const file of testCase.files) {
    const target = path.join(dir, file);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, file === dockerfile ? COPY_ALL_DOCKERFILE : `content of ${file}\n`);
  }
  if (!testCase.files.includes(dockerfile)) {
    await fs.mkdir(path.dirname(path.join(dir, dockerfile)), { recursive: true });
    await fs.writeFile(path.join(dir, dockerfile), COPY_ALL_DOCKERFILE);
  }
  if (testCase.dockerignore !== undefined) await fs.writeFile(path.join(dir, '.dockerignore'), testCase.dockerignore);
}
