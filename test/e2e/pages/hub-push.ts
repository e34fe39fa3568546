// Test page (served by the e2e Vite server): the Export step's "Push to the Hub" form, mounted with the export
// files of a fabricated study and pointed at the fake Hub given as `?hub=URL`.
import { mount } from 'svelte';
import HubPush from '../../../src/ui/components/HubPush.svelte';
import { hubPushExportFiles } from './hub-push-files.ts';

const hubUrl = new URLSearchParams(location.search).get('hub') ?? undefined;
mount(HubPush, { target: document.getElementById('app')!, props: { files: hubPushExportFiles(), hubUrl } });
