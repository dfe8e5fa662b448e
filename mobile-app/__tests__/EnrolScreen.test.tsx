import { fireEvent, screen } from '@testing-library/react-native';

import { ApiError } from '../src/api/client';
import type { Enrolment } from '../src/api/types';
import { pickPhotos } from '../src/components/pickPhotos';
import { EnrolScreen } from '../src/screens/EnrolScreen';
import { fakeClient, renderWith } from '../test-utils/app';
import { body } from '../test-utils/http';

jest.mock('../src/components/pickPhotos', () => ({ pickPhotos: jest.fn() }));
const pick = pickPhotos as jest.Mock;
const photos = ['a.jpg', 'b.jpg', 'blank.jpg'].map((name) => ({ uri: `file:///${name}`, name, type: 'image/jpeg' }));

beforeEach(() => {
  pick.mockReset();
  pick.mockResolvedValue({ kind: 'picked', photos });
});

async function fillIn(client: ReturnType<typeof fakeClient>) {
  await renderWith(client, <EnrolScreen />);
  const enrol = () => screen.getByRole('button', { name: 'Enrol this person' });
  expect(enrol()).toBeDisabled();
  await fireEvent.changeText(screen.getByLabelText('Name (required)'), ' Ana Díaz ');
  await fireEvent.changeText(screen.getByLabelText('Date last seen (optional)'), '2026-11-01');
  expect(enrol()).toBeDisabled(); // no photo yet
  await fireEvent.press(screen.getByRole('button', { name: 'Add photos from the library' }));
  expect(pick).toHaveBeenCalledWith('library', true);
  expect(enrol()).toBeEnabled();
  return enrol;
}

test('enrols with name, details and photos, and lists the photos without a face', async () => {
  const client = fakeClient();
  client.enrol.mockResolvedValue(body<Enrolment>('enrol_201_skipped'));
  const enrol = await fillIn(client);
  await fireEvent.press(enrol());
  expect(client.enrol).toHaveBeenCalledWith('Ana Díaz', { last_seen: '2026-11-01' }, photos, expect.anything());
  const recorded = body<Enrolment>('enrol_201_skipped');
  expect(await screen.findByText(`Enrolled ${recorded.person.name} with 2 faces.`)).toBeTruthy();
  expect(screen.getByText('1 photo was not used:')).toBeTruthy();
  expect(screen.getByText('• Photo 3 (blank.jpg): no face found')).toBeTruthy();
});

test('a photo can be removed before enrolling', async () => {
  const client = fakeClient();
  client.enrol.mockResolvedValue(body<Enrolment>('enrol_201_skipped'));
  const enrol = await fillIn(client);
  await fireEvent.press(screen.getByRole('button', { name: 'Remove photo 2' }));
  await fireEvent.press(enrol());
  expect(client.enrol.mock.calls[0][2]).toEqual([photos[0], photos[2]]);
});

test('a search-only key is told that enrolment needs an enrol key', async () => {
  const client = fakeClient();
  client.enrol.mockRejectedValue(new ApiError('forbidden', 'this needs an API key with the enrol role', 403));
  const enrol = await fillIn(client);
  await fireEvent.press(enrol());
  expect(await screen.findByText('Not allowed with this key')).toBeTruthy();
  expect(screen.getByText('This needs a key with more rights: enrolling needs an enrol key (Settings).')).toBeTruthy();
});
