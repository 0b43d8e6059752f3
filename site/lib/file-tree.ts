// A repository's flat file list as a folder tree with the bytes under each folder, for the model
// page's collapsible file list.
import type { SizedFile } from './file-sets.ts';

export interface TreeFolder {
  /** Folder name (one path segment); '' for the root. */
  name: string;
  /** Path from the root, without leading or trailing '/'; '' for the root. */
  path: string;
  /** Bytes of every file below this folder. */
  bytes: number;
  /** Number of files below this folder. */
  count: number;
  folders: TreeFolder[];
  files: SizedFile[];
}

/** The tree of `files` (paths split on '/'), folders before files, each sorted by name. */
export function fileTree(files: SizedFile[]): TreeFolder {
  const root: TreeFolder = { name: '', path: '', bytes: 0, count: 0, folders: [], files: [] };
  for (const file of files) {
    const parts = file.path.split('/');
    let folder = root;
    folder.bytes += file.size;
    folder.count++;
    for (const part of parts.slice(0, -1)) {
      let next = folder.folders.find((f) => f.name === part);
      if (!next) {
        next = { name: part, path: folder.path ? `${folder.path}/${part}` : part, bytes: 0, count: 0, folders: [], files: [] };
        folder.folders.push(next);
      }
      next.bytes += file.size;
      next.count++;
      folder = next;
    }
    folder.files.push(file);
  }
  const sort = (folder: TreeFolder) => {
    folder.folders.sort((a, b) => a.name.localeCompare(b.name));
    folder.files.sort((a, b) => a.path.localeCompare(b.path));
    folder.folders.forEach(sort);
  };
  sort(root);
  return root;
}
